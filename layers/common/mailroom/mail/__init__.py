"""Email text for the agent: Gmail message resources to readable text (`decode`), outgoing MIME (`compose`)."""
