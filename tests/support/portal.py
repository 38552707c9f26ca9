"""Constants of the shared `portal_sandbox` / `portal_client` fixtures."""

DEMO_APP_AREA = "DEMO"
DEMO_API_KEY = "demo-key-3f9c2a71e5"
