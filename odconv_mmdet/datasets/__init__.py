from .synthetic_shapes import CLASSES as SHAPE_CLASSES
from .synthetic_shapes import generate_shapes_dataset

__all__ = ['SHAPE_CLASSES', 'generate_shapes_dataset']
