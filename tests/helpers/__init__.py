"""What the tests run on: a fault-injecting proxy, the llama.cpp server launcher, the screenshot tool."""
