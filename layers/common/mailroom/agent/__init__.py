"""The mail agent: a LangGraph tool-calling graph over the user's Gmail.

Imported only on the `chat` path: LangChain, LangGraph and the OpenAI client take
seconds to import and `hello` must not pay for them.
"""
