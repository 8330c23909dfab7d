"""Team policies (data sharing, notifications, claims, telescope time) and the one access module."""
