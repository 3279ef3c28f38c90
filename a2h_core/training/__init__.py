"""Training: prepared data sets, one trainer loop shared by every network, the losses and metrics of all four
networks, evaluation, and personalisation. Never imported at inference time; never imports ComfyUI.

- `shards`: the prepared data format (one safetensors shard per clip + `manifest.json`), read and written;
- `prepare`: clips in (any video PyAV decodes, with sound and a head-pose curve beside it), shards out;
- `datasets`: torch data sets over the shards (N_H windows, N_D/N_I frame pairs, N_M windows);
- `config`: the typed configs (`TrainConfig` for the loop; `PoseLossConfig`, `KeypointLossConfig`,
  `MotionLossConfig` for the networks);
- `distributed`: torch.distributed set-up (torchrun's environment, gloo on CPU, NCCL on CUDA);
- `trainer`: the loop (DDP, mixed precision, exact resume, logging, validation, last/best weights);
- `losses`, `metrics`: the paper's equations and the evaluation numbers, as named functions;
- `keypoint_losses`, `tps`: FOMM's perceptual and equivariance losses and random transforms, eqs. 5-7;
- `video_metrics`, `video_evaluation`: PSNR, SSIM, KE, LPIPS, FID, LSE and the paper's video protocol;
- `metric_networks`: LPIPS and FID's Inception through the lpips and pytorch-fid packages, with local-file options;
- `lip_sync`: SyncNet's lip-sync scores LSE-D / LSE-C (syncnet_python's protocol);
- `pretrained`: the VGG weights (torchvision's file and cache) and the offline messages;
- `pose_task`: the head-motion predictor N_H and its discriminator on that loop;
- `keypoint_task`: N_D + N_I (FOMM's reconstruction); `motion_task`: N_M's two stages with N_D, N_I frozen;
- `personalize`: fine-tuning N_H on one short clip of a person.
"""
