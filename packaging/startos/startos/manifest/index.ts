import { setupManifest } from '@start9labs/start-sdk'

export const manifest = setupManifest({
  id: 'l402d',
  title: 'l402d',
  license: 'mit',
  packageRepo: 'https://github.com/l402d/l402d',
  upstreamRepo: 'https://github.com/l402d/l402d',
  marketingUrl: 'https://github.com/l402d/l402d',
  donationUrl: null,
  description: {
    short: { en_US: 'Earn and spend over Lightning with L402, from your own LND' },
    long: {
      en_US:
        'l402d lets your LND earn (L402 challenges, token verification, a paid reverse proxy) and spend (pay L402 services within budgets), over REST, a CLI and MCP for AI agents. Invoices come from your node; nothing is custodial and nothing is hosted.',
    },
  },
  volumes: ['main'],
  images: {
    l402d: {
      source: { dockerTag: 'ghcr.io/l402d/l402d:v0.1.0' },
      arch: ['aarch64', 'x86_64'],
    },
  },
  dependencies: {
    lnd: {
      description: { en_US: 'l402d creates invoices and pays through your LND.' },
      optional: false,
      metadata: { title: 'LND', icon: 'https://raw.githubusercontent.com/Start9Labs/lnd-startos/master/icon.svg' },
    },
  },
})
