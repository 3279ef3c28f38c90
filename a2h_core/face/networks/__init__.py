"""Face-detector networks: YuNet and the three MTCNN stages, one module per file; loading and running them is in
`a2h_core.face.detectors`."""
