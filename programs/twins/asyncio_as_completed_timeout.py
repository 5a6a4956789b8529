import asyncio

async def job(name, ms):
    await asyncio.sleep(ms / 1000)
    print(name, "done")
    return name

async def main():
    slow = asyncio.create_task(job("slow", 120))
    for aw in asyncio.as_completed([job("fast", 10), slow, job("medium", 40)], timeout=0.080):
        try:
            print("got", await aw)
        except Exception as e:
            print("caught", type(e).__name__)
    await asyncio.sleep(0.060)
    f = asyncio.get_running_loop().create_future()
    f.set_result("ready")
    for aw in asyncio.as_completed([f]):
        print("got", await aw)

asyncio.run(main())
