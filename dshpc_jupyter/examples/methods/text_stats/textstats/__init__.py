"""Helpers of the Text Statistics example method (a package inside the method directory)."""
