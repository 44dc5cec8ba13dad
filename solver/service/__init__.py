"""pa-solver as a service: CRD, PAS and DTR over HTTP, and the plain JSON endpoints
(shared/spec/SERVICE.md).  `pa-solver serve` runs `app.create_app` on uvicorn."""
