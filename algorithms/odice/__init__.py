"""O-DICE (Mao et al., ICLR 2024) for offline RL and offline IL, with BC and IQL baselines on the same machinery."""

from rlcore.algorithms.odice.config import BCConfig, IQLConfig, ODICEConfig, OfflineConfig
from rlcore.algorithms.odice.odice import ODICE

__all__ = ["ODICE", "ODICEConfig", "BCConfig", "IQLConfig", "OfflineConfig"]
