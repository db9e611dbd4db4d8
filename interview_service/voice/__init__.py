"""The interviewer's voice loop: providers, turn-taking and the conversation."""
