import { sdk } from '../sdk'
import { showAdminKey } from './showAdminKey'

export const actions = sdk.Actions.of().addAction(showAdminKey)
