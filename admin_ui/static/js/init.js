// Starts the vendored GOV.UK Frontend and MOJ Frontend components on every page.
import { initAll as initGovuk } from '../vendor/govuk-frontend/govuk-frontend.min.js'
import { initAll as initMoj } from '../vendor/moj-frontend/moj-frontend.min.js'

initGovuk()
initMoj()
