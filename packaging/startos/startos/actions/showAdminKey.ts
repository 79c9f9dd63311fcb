import { store } from '../fileModels/store.yaml'
import { sdk } from '../sdk'

export const showAdminKey = sdk.Action.withoutInput(
  'show-admin-key',
  async () => ({
    name: 'Show admin key',
    description: "The key that signs in to l402d's dashboard and its admin API",
    warning: 'The admin key can do everything, spending included: keep it to yourself.',
    allowedStatuses: 'any',
    group: null,
    visibility: 'enabled',
  }),
  async ({ effects }) => {
    const adminKey = await store.read((s) => s.adminKey).once()
    return {
      version: '1',
      title: 'Admin key',
      message: 'Paste it into the dashboard, or send it as X-API-Key.',
      result: { type: 'single', value: adminKey ?? '', masked: true, copyable: true, qr: false },
    }
  },
)
