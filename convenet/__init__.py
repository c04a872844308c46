"""ConvNet Playground core: pretrained CNN layers as image-similarity engines.

Data flows one way, through the packages in this order: models -> data -> features ->
search -> explain -> the facades (playground, inspector) -> UI. Nothing in this package imports
Gradio, so the command line and tests use it directly.
"""

__version__ = "0.1.0"
