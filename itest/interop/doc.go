// Package interop cross-checks l402d's protocol package against the
// reference producer, Aperture v0.5.0 (its l402, mint and auth packages),
// in both directions. It is a separate module so that Aperture and its
// dependencies never enter l402d's own build.
package interop
