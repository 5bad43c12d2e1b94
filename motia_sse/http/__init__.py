"""The HTTP edge: the app, feed handlers, workbench, OpenAPI, access rules, responses."""
