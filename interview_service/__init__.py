"""AI voice interviews: WebRTC signaling, TURN credentials and the interviewer."""
