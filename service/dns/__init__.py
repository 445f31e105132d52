"""The DNS as Hostmaster speaks it: domain names, record values, and where a name belongs."""
