"""Code shared by portal, gateway and analytics that needs neither Django nor aiohttp."""
