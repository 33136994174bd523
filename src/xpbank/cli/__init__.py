"""The command line and its tools: `xpbank` (`main`), record lines, the simulated
classroom and the live demo."""
