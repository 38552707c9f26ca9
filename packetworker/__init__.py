"""packetworker: keeps Dynamics Mobile field-sales apps in sync with an ERP or CRM."""

__version__ = "0.1.0"
