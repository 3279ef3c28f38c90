"""The development kit of this repository: helpers shared by the tests (tests/) and the tools (tools/)."""
