"""One ``APIRouter`` per resource; ``photocluster.api.main`` includes them all."""
