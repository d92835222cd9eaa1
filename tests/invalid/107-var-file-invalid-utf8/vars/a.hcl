greeting = "café"
