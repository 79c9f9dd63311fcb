package mpp

import "testing"

// TestChallengeID pins the MAC input (Aperture's buildHMACInput vectors)
// and the id (computed independently with Python's hmac module).
func TestChallengeID(t *testing.T) {
	tests := []struct {
		name      string
		c         Challenge
		input, id string
	}{
		{
			name: "all slots",
			c: Challenge{Realm: "api.example.com", Method: "lightning", Intent: "charge", Request: "req_b64",
				Expires: "2026-01-01T00:00:00Z", Digest: "sha-256=:abc:", Opaque: "opaque_b64", Description: "not bound"},
			input: "api.example.com|lightning|charge|req_b64|2026-01-01T00:00:00Z|sha-256=:abc:|opaque_b64",
			id:    "-qG6qqKIbboheAu1iRKIV4lo1_NiG1wwcWjuGZD7A48",
		},
		{
			name:  "no optional slots",
			c:     Challenge{Realm: "api.example.com", Method: "lightning", Intent: "charge", Request: "req_b64"},
			input: "api.example.com|lightning|charge|req_b64|||",
			id:    "mTmMfXvLm14-6N-CzfvIyHhXZJer3o-0XDJgMTdlamA",
		},
		{
			name:  "digest without expires",
			c:     Challenge{Realm: "api.example.com", Method: "lightning", Intent: "charge", Request: "req_b64", Digest: "sha-256=:abc:"},
			input: "api.example.com|lightning|charge|req_b64||sha-256=:abc:|",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := macInput(tc.c); got != tc.input {
				t.Fatalf("input %q, want %q", got, tc.input)
			}
			id, err := NewChallengeID(testKey, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if tc.id != "" && id != tc.id {
				t.Fatalf("id %q, want %q", id, tc.id)
			}
			tc.c.ID = id
			if !VerifyChallengeID(testKey, tc.c) {
				t.Fatal("own id does not verify")
			}
			tc.c.Description = "descriptions are not bound"
			if !VerifyChallengeID(testKey, tc.c) {
				t.Fatal("description changed the id")
			}
		})
	}
}

func TestChallengeIDRefuses(t *testing.T) {
	base := Challenge{Realm: "r", Method: "lightning", Intent: "charge", Request: "q", Expires: "2026-01-01T00:00:00Z"}
	id, _ := NewChallengeID(testKey, base)
	base.ID = id
	mutate := map[string]func(*Challenge){
		"realm":       func(c *Challenge) { c.Realm = "r2" },
		"method":      func(c *Challenge) { c.Method = "tempo" },
		"intent":      func(c *Challenge) { c.Intent = "session" },
		"request":     func(c *Challenge) { c.Request = "q2" },
		"expires":     func(c *Challenge) { c.Expires = "2099-01-01T00:00:00Z" },
		"no expires":  func(c *Challenge) { c.Expires = "" },
		"digest":      func(c *Challenge) { c.Digest = "d" },
		"opaque":      func(c *Challenge) { c.Opaque = "o" },
		"id":          func(c *Challenge) { c.ID = c.ID[:len(c.ID)-1] + "A" },
		"padded id":   func(c *Challenge) { c.ID += "=" },
		"empty id":    func(c *Challenge) { c.ID = "" },
		"slot shift":  func(c *Challenge) { c.Realm, c.Method = "r|lightning", "" },
		"pipe inside": func(c *Challenge) { c.Opaque = "a|b" },
	}
	for name, m := range mutate {
		c := base
		m(&c)
		if VerifyChallengeID(testKey, c) {
			t.Errorf("%s: altered challenge verifies", name)
		}
	}
	if VerifyChallengeID([]byte("another key"), base) {
		t.Error("verifies under another key")
	}
	if _, err := NewChallengeID(testKey, Challenge{Realm: "a|b"}); err == nil {
		t.Error("realm with | accepted")
	}
}
