"""Teachers: models that critique, verify and rewrite a text against evidence."""
