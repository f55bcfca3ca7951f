"""Running the whole product on one machine: emulated AWS, local servers, the demo."""
