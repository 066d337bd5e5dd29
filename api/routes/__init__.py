"""HTTP routes, one module per area; each route is thin."""
