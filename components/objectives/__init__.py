from components.objectives.clip_loss import ClipLoss

__all__ = ["ClipLoss"]
