"""Running user code: step configs, the loader, the flow context, the step runners."""
