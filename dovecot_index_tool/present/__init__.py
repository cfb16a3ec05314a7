"""Human output (rich) and machine output (JSON) of the documents the tool builds."""
