"""Read models built from the notification logs, tracked in the same transaction."""

from projections.runner import Projection, ProjectionRunner
from projections.store import ViewDatabase
from projections.views import Views

__all__ = ["Projection", "ProjectionRunner", "ViewDatabase", "Views"]
