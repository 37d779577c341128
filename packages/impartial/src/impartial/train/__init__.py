"""Training: blind spots, losses, the checkpoint-ensemble loop, finetuning."""
