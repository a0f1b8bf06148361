enum QPQServerNIOPlaceholder {}
