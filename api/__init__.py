"""Every way into monetise: the HTTP API, the command line and AgentView."""
