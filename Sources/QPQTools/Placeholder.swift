enum QPQToolsPlaceholder {}
