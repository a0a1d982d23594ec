"""Infrastructure shared by every app; imports no app."""
