# myapp — dev. Rendered by slipway from config/dev/app.properties.tpl; do not edit on the host.
app.environment=${environment}
app.version=${version}

server.port=${port}
server.shutdown=graceful

db.url=jdbc:postgresql://${db_host}:5432/myapp
db.user=myapp
db.password=${db_password}
db.pool.max=5

cache.enabled=false
debug.endpoints.enabled=true
