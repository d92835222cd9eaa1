server.port=${port}
