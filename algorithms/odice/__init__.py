"""O-DICE (Mao et al., ICLR 2024) for offline RL and offline IL (see docs/odice.md)."""

from rlcore.algorithms.odice.config import ODICEConfig
from rlcore.algorithms.odice.odice import ODICE

__all__ = ["ODICE", "ODICEConfig"]
