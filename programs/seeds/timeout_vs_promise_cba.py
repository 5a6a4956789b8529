# asyncio meaning of the seed: set_timeout -> loop.call_later(0, f);
# Promise.resolve() -> a done future; .then(f) -> add_done_callback that
# calls f(result) and resolves a new future with f's return value.
import asyncio


def resolved(value=None):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


def then(fut, f):
    out = fut.get_loop().create_future()
    fut.add_done_callback(lambda done: out.set_result(f(done.result())))
    return out


async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print('A'))
    then(resolved(), lambda _: print('B'))
    print('C')


asyncio.run(main())
