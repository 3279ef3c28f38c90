"""Training: prepared data sets, one trainer loop shared by every network, the head-motion predictor's losses and
metrics, and personalisation. Never imported at inference time; never imports ComfyUI.

- `shards`: the prepared data format (one safetensors shard per clip + `manifest.json`), read and written;
- `prepare`: clips in (any video PyAV decodes, with sound and a head-pose curve beside it), shards out;
- `datasets`: torch data sets of training windows over the shards;
- `config`: the typed configs (`TrainConfig` for the loop, `PoseLossConfig` for N_H);
- `distributed`: torch.distributed set-up (torchrun's environment, gloo on CPU, NCCL on CUDA);
- `trainer`: the loop (DDP, mixed precision, exact resume, logging, validation, last/best weights);
- `losses`, `metrics`: the paper's equations and the evaluation numbers, as named functions;
- `pose_task`: the head-motion predictor N_H and its discriminator on that loop;
- `personalize`: fine-tuning N_H on one short clip of a person.
"""
