"""Costs (the stacks' monthly_cost output, from the dated prices.json) and the IaaS vs PaaS report."""
