"""CloudWatch alarms in the channel: parsing, episodes, the storm guard, routing and correlation."""
