"""The method: change scores, drop policies, dropping and the activation cache, FLOPs, and the controller.

Importing it registers every policy: Learn&Drop's own (``learn_drop``) and its peers (``peers``).
"""

from . import learn_drop, peers  # noqa: F401  (registration)
