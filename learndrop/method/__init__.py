"""The method: change scores, drop policies, dropping and the activation cache, FLOPs, and the controller."""
