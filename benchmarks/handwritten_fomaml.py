"""First-order MAML: the loops of ``handwritten_maml.py`` with ``first_order=True``."""

from functools import partial

import handwritten_maml
from handwritten_maml import SHAPE  # noqa: F401  (read by training_speed.py)

handwritten_loop = partial(handwritten_maml.handwritten_loop, first_order=True)
learner = partial(handwritten_maml.learner, first_order=True)
