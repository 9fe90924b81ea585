"""What the volunteer console and the command-center dashboard share as web pages."""
