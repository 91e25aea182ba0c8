"""Retrieval: the derived indexes, fusion, graph walk and the search stages."""
