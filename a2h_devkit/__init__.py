"""The development kit of this repository: helpers shared by the tests (tests/) and the tools (tools/).

Never imported by `a2h_core` or `nodes`, and never needed to run the pack or the library. It works from a checkout
(with `pip install -e .`, or the repository root on the path as pytest.ini puts it): some helpers read files of the
repository itself (the ComfyUI test double, the core-node snapshot, the web fixtures).

One module per concern:
- `imports`: import code that is not installed (the original Audio2Head checkout, the `comfy_api` test double);
- `original`: the original Audio2Head code, built at the published sizes with the same random weights as ours;
- `random_weights`: random state dicts, the authors' pickle layout, reduced-width weights files, random batch norm;
- `speech`: synthetic speech-like audio, WAV writing, espeak-ng speech, the pitch tracker's test signals;
- `pitch`: the F0 error in cents between two pitch tracks, as the audio features see it;
- `pose_boxes`: random poses in the training range and the original's OpenCV drawing of the pose box;
- `workflow_layout`: the widgets and slots the ComfyUI frontend builds for each node of a workflow;
- `web_fixtures`: the keyframe curves the web editor's JavaScript is tested against;
- `timing`: wall-clock timing for the benchmarks;
- `media`: what tests read back from our outputs (an MP4's streams, a soundtrack's samples);
- `face_scenes`: test photographs with faces at known places, built from scikit-image's portraits;
- `synthetic_clips`: talking-head clips whose head motion is a known function of their speech, for training tests.
"""
