"""`RunContext`, what a component factory gets besides its config, lives in
`kplug.components` beside the components whose methods take it and whose results it holds
(one module: the two would otherwise import each other); imported from here too."""

from kplug.components import RunContext

__all__ = ["RunContext"]
