"""The Hostmaster service: settings, logging, validation, the request tracker and the REST API."""
